"""
MAPI meaning over the store: property tags and types, folder classes, and
the conversion between MAPI properties and Internet formats (iCalendar,
vCard, RFC 5322).  No wire syntax lives here: C{gateway.imap} writes the
XMAPI extension of C{docs/xmapi.md} on top of it.
"""
