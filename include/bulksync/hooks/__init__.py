"""Airflow hooks: a connection in, a client out, nothing else.

Importing this package installs :mod:`bulksync.scrub` for the process: every log record is scrubbed
of the secrets of the connections hooks resolve, in all their forms, and Airflow's secrets masker
learns those forms too.
"""

from bulksync.scrub import install as _install_scrubber

_install_scrubber()
