from twisted.application.service import ServiceMaker

gateway = ServiceMaker("gateway", "gateway.tap", "IMAP, POP3, HTTP, FTP and LMTP over one Account/Domain realm.", "gateway")
