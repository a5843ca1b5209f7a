# -*- test-case-name: tests.test_imap_binary -*-
"""
BINARY (RFC 3516): MIME part bodies with their Content-Transfer-Encoding
undone, and literal8 (C{~{n}}) for data that holds NULs.  FETCH's BINARY
items (L{gateway.imap.message}) render with these.
"""

import base64
import binascii
import re

from gateway.imap import mimeparts

_BINARY_CTE = re.compile(rb"(?im)^content-transfer-encoding:[ \t]*binary[ \t]*\r?\n(?![ \t])")


class UnknownTransferEncoding(Exception):
    """
    A BINARY section has a Content-Transfer-Encoding this server cannot
    undo (RFC 3516 4.3: C{NO [UNKNOWN-CTE]}).
    """


def decodedBody(entity):
    """
    The body of a MIME entity with its Content-Transfer-Encoding undone.

    @raise UnknownTransferEncoding: for an encoding other than 7bit, 8bit,
        binary, base64 and quoted-printable.
    """
    body = entity.body
    encoding = (entity.header("content-transfer-encoding") or b"7bit").strip().lower()
    if encoding in (b"7bit", b"8bit", b"binary"):
        return body
    if encoding == b"base64":
        compact = b"".join(body.split())
        compact = compact.split(b"=", 1)[0]
        return binascii.a2b_base64(compact + b"=" * (-len(compact) % 4)) if compact else b""
    if encoding == b"quoted-printable":
        return decodeQuotedPrintable(body)
    raise UnknownTransferEncoding(encoding.decode("latin-1", "replace")[:40])


def decodeQuotedPrintable(body):
    """
    Quoted-printable undone as RFC 2045 6.7 says: blanks at the end of a
    line are transport padding and dropped, a line ending in C{=} (even
    when blanks follow it) is a soft break, other lines end in CRLF.
    """
    lines = body.split(b"\n")
    last = lines.pop()
    out = []
    for line in lines:
        line = line.rstrip(b" \t\r")
        if line.endswith(b"="):
            out.append(line[:-1])
        else:
            out.append(line + b"\r\n")
    last = last.rstrip(b" \t\r")
    out.append(last[:-1] if last.endswith(b"=") else last)
    return binascii.a2b_qp(b"".join(out))


def base64Parts(data):
    """
    C{data} with every part whose Content-Transfer-Encoding is C{binary}
    re-encoded in base64, as Dovecot stores what an APPEND brings in a
    literal8: a plain FETCH BODY[] can then be sent (RFC 3516 4.2: no NUL
    outside a literal8), and BINARY[] still gives the octets as sent, bare
    line feeds included.
    """
    leaves = []

    def walk(entity):
        if entity.parts is not None:
            for part in entity.parts:
                walk(part)
        elif entity.embedded is not None:
            walk(entity.embedded)
        elif (entity.header("content-transfer-encoding") or b"").strip().lower() == b"binary":
            leaves.append(entity)

    walk(mimeparts.Entity(data, 0, len(data)))
    out, pos = [], 0
    for entity in leaves:
        header, found = _BINARY_CTE.subn(b"Content-Transfer-Encoding: base64\r\n", entity.headerBytes, 1)
        if found:
            out += [data[pos:entity.start], header,
                    base64.encodebytes(entity.body).replace(b"\n", b"\r\n")]
            pos = entity.end
    out.append(data[pos:])
    return b"".join(out)


def literal8(value):
    """
    A literal, or a literal8 (C{~{n}}) when C{value} holds a NUL.
    """
    return (b"~{%d}\r\n" if b"\x00" in value else b"{%d}\r\n") % (len(value),) + value
