"""Alerts: tell people when a run failed, quarantined rows, warned or does not reconcile.

:mod:`bulksync.notify.webhook` renders an :class:`~bulksync.notify.webhook.Alert` for Slack, Microsoft
Teams or any JSON endpoint and posts it to the webhook connections named in a spec's ``alerts:`` block.
"""
