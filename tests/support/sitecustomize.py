"""Run at start-up by every Python process with tests/support on its path (tests/test_sync_budget.py
puts it there for ``python -m stevq run`` and its spawned workers): with STEVQ_SYNC_METER set to a
folder, the device-to-host transfer meter is installed and the process's counts are written there."""

import os

if os.environ.get("STEVQ_SYNC_METER"):
    import sync_meter

    sync_meter.install_for_process(os.environ["STEVQ_SYNC_METER"])
