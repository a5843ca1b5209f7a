# -*- test-case-name: tests.test_ftp -*-
"""
The FTP and FTPS front-end: a shell over the account's file storage.

L{gateway.ftp.server} holds the factory and the control protocol,
L{gateway.ftp.commands} the command table (it drives FEAT and HELP),
L{gateway.ftp.shell} the file-system commands, L{gateway.ftp.workers} the
threads their disk work runs in and L{gateway.ftp.data} the data channel.
"""
