"""
The HTTP front-end: personal web sites (C{/~account/}), free/busy
(C{freebusy.vfb}, C{/freebusy/<address>.vfb}) and mail-client
autoconfiguration, built on C{twisted.web}.  L{gateway.http.server.makeFactory}
is the entry point.
"""
