"""Reading `systemctl show` output: one systemctl call answers for many units.

Under TCG every exec costs tens of milliseconds of guest CPU, so checks ask systemd about all
their units at once and read the answers here.
"""

from __future__ import annotations


def show_blocks(text: str, units: list[str] | tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Properties per requested unit from `systemctl show -p … UNIT…` output.

    systemctl prints one block per unit, in the order asked, separated by blank lines.  Blocks
    are matched to *units* by that order, not by their Id: an alias (ntp.service) answers with
    the Id of the unit it names (ntpsec.service).  A unit with no block gets no entry.
    """
    blocks: list[dict[str, str]] = [{}]
    for line in text.splitlines():
        if not line.strip():
            if blocks[-1]:
                blocks.append({})
            continue
        key, _, value = line.partition("=")
        blocks[-1][key] = value
    return dict(zip(units, [b for b in blocks if b], strict=False))
