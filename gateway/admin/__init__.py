"""
Operations: connection limits on every listener (L{gateway.admin.limits}),
the session registry and metrics (L{gateway.admin.monitor}), the admin
HTTP listener (L{gateway.admin.web}) and what C{gatewayctl who} asks it
(L{gateway.admin.who}).  Only L{gateway.service} wires them;
they know no protocol syntax beyond the one-line refusals of
L{gateway.admin.limits}.
"""
