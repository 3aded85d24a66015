"""Linking a Telegram account to a GetCourse user: the student's flow (``flow``), the one place
a link is stored or removed (``store``), the proof that an email is the person's own
(``ownership``) with its code letters (``code_mail``), the limits on lookups (``lookup_gate``),
the lookups waiting for an export (``lookup_queue``), and both directions between a link's
GetCourse user and Salebot client (``bridge``)."""
