"""The folder the network guard puts first on `PYTHONPATH`: see sitecustomize.py.

A package only so the pytest plugin can import `loopback_guard` as
`tests.support.netguard_site.loopback_guard`; launched interpreters import its modules by their
own names.
"""
