"""The reconciler: plan (pure: desired vs observed -> actions), apply, upload, the stack's
journal and lock, teardown and the reaper of expired stacks.

Talks to Google Cloud only through `deployer.providers`; never imports the emulator or
the serving runtime.
"""
