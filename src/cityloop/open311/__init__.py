"""Open311 GeoReport v2 server at /open311/v2/, with mySociety's request-update extension.

Open311 is how existing 311 clients (FixMyStreet, city apps, hackathon tools) talk to a city
without learning cityloop's own API. The server only translates: a POSTed request becomes a case
through ``cases.service.report`` on the ``open311`` channel, and every read is a public view of
the case loop (open or closed, the responsible department, the disposal deadline) that never
carries the reporter's contact details. See docs/open311.md.
"""
