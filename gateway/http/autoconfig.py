# -*- test-case-name: tests.test_http -*-
"""
Mail-client autoconfiguration in Thunderbird's C{clientConfig} 1.1 format
(C{/.well-known/autoconfig/mail/config-v1.1.xml} and
C{/mail/config-v1.1.xml}): this server's IMAP and POP3 listeners, from the
configuration.  C{tcp:} listeners are offered with STARTTLS, C{ssl:} ones
as SSL; the outgoing server is C{[http] autoconfig_outgoing} when set.
"""

from xml.etree import ElementTree

from twisted.web import http

from gateway.http.pages import errorPage

#: (protocol section, clientConfig server type)
INCOMING = (("imap", "imap"), ("pop3", "pop3"))


def listeners(config, section):
    """
    @return: C{list} of C{(socketType, port)} for the C{tcp:}/C{ssl:}
        endpoint strings of an enabled section; implicit TLS first.
    """
    if not config[section, "enabled"]:
        return []
    found = []
    for description in config[section, "listen"]:
        parts = description.split(":")
        if parts[0] not in ("tcp", "ssl") or len(parts) < 2:
            continue
        try:
            port = int(parts[1])
        except ValueError:
            continue
        found.append(("SSL" if parts[0] == "ssl" else "STARTTLS", port))
    return sorted(found, key=lambda item: item[0] != "SSL")


def clientConfig(config, domain, hostname):
    """
    The clientConfig document for C{domain} (C{str}), C{bytes}.
    """
    root = ElementTree.Element("clientConfig", version="1.1")
    provider = ElementTree.SubElement(root, "emailProvider", id=domain)
    ElementTree.SubElement(provider, "domain").text = domain
    ElementTree.SubElement(provider, "displayName").text = domain
    ElementTree.SubElement(provider, "displayShortName").text = domain
    for section, kind in INCOMING:
        for socketType, port in listeners(config, section):
            server = ElementTree.SubElement(provider, "incomingServer", type=kind)
            ElementTree.SubElement(server, "hostname").text = hostname
            ElementTree.SubElement(server, "port").text = str(port)
            ElementTree.SubElement(server, "socketType").text = socketType
            ElementTree.SubElement(server, "authentication").text = "password-cleartext"
            ElementTree.SubElement(server, "username").text = "%EMAILADDRESS%"
    outgoing = config.get("http", "autoconfig_outgoing")
    if outgoing is not None:
        host, port, socketType = outgoing
        server = ElementTree.SubElement(provider, "outgoingServer", type="smtp")
        ElementTree.SubElement(server, "hostname").text = host
        ElementTree.SubElement(server, "port").text = str(port)
        ElementTree.SubElement(server, "socketType").text = socketType
        ElementTree.SubElement(server, "authentication").text = "password-cleartext"
        ElementTree.SubElement(server, "username").text = "%EMAILADDRESS%"
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def renderAutoconfig(context, request):
    """
    Answer an autoconfig request: the domain of C{?emailaddress=} (404 when
    this server does not have it), else the domain of the C{Host} header.
    """
    localAddress = getattr(request.getHost(), "host", None)
    address = (request.args.get(b"emailaddress") or [b""])[0].decode("utf-8", "replace").strip()
    if address:
        domain = context.directory.getDomain(address.rpartition("@")[2]) if "@" in address else None
    else:
        host = (request.getHeader(b"host") or b"").decode("latin-1")
        domain = context.directory.domainForHost(host, localAddress)
    if domain is None or not domain.enabled:
        return errorPage(request, http.NOT_FOUND, "This server does not serve that domain.")
    body = clientConfig(context.config, domain.name, context.hostname)
    request.setHeader(b"content-type", b"application/xml; charset=utf-8")
    request.setHeader(b"content-length", b"%d" % (len(body),))
    return body
