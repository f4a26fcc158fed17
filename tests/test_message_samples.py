"""docs/messages.md is what `python -m devtools.samples` prints, so the page of sample messages cannot go stale."""

import os
import subprocess
import sys

from alerts.templates import sms_segment_fits
from devtools import samples
from tests.conftest import ROOT


def test_the_committed_samples_page_is_what_the_command_prints():
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    result = subprocess.run([sys.executable, "-m", "devtools.samples"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    committed = (ROOT / "docs" / "messages.md").read_text(encoding="utf-8")
    assert committed == result.stdout, "docs/messages.md is stale: run `make samples` and commit it"


def test_the_page_shows_every_kind_on_every_channel_and_each_sms_fits_one_segment():
    page = samples.page()
    for title, build in samples.KINDS:
        assert f"## {title}" in page
        for channel in ("email", "telegram", "sms"):
            message = build(channel)
            assert message.body and message.body.splitlines()[0] in page
        assert sms_segment_fits(build("sms").body)
    assert page.count("**Email** — subject:") == page.count("**Telegram**") == page.count("**SMS**") == 4
