"""`systemctl show` output read per requested unit: by order, so aliases answer for themselves."""

from __future__ import annotations

from debian_cloud_tests.systemd import show_blocks

# systemctl show -p Id,ActiveState,UnitFileState ntp.service chrony.service apt-daily.timer
# on a guest where ntp.service is an alias of ntpsec.service and chrony is not installed
SHOWN = """ActiveState=active
UnitFileState=enabled
Id=ntpsec.service

ActiveState=inactive
UnitFileState=
Id=chrony.service

ActiveState=active
UnitFileState=enabled
Id=apt-daily.timer
"""


def test_blocks_follow_the_order_asked_not_the_id() -> None:
    states = show_blocks(SHOWN, ("ntp.service", "chrony.service", "apt-daily.timer"))
    assert states["ntp.service"]["Id"] == "ntpsec.service"
    assert states["ntp.service"]["ActiveState"] == "active"
    assert states["chrony.service"]["UnitFileState"] == ""
    assert states["apt-daily.timer"]["UnitFileState"] == "enabled"


def test_units_without_an_answer_are_absent() -> None:
    assert show_blocks("", ("ssh.service",)) == {}
    assert list(show_blocks(SHOWN.split("\n\n")[0], ("a.service", "b.service"))) == ["a.service"]
