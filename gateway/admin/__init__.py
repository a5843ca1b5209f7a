"""
Operations: connection limits on every listener (L{gateway.admin.limits}),
the session registry and metrics (L{gateway.admin.monitor}), and the admin
HTTP listener (L{gateway.admin.web}).  Only L{gateway.service} wires them;
they know no protocol syntax beyond the one-line refusals of
L{gateway.admin.limits}.
"""
