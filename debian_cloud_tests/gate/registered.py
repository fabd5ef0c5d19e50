"""Every registered copy of the image tested: a cloud copies an image to each region it is
published in, and each copy is a registration of its own that a release makes public.

`gate --registered ID@REGION` names the copies; a run tested one when it carries the provider's
`registered_image` and `registered_region` properties for it.  The policy's
``[publication] accept_untested`` names the regions whose copies may go out untested.
"""

from __future__ import annotations

import argparse

from ..junitprops import Prop
from .junit import Run
from .reasons import Kind, Reason


def parse(text: str) -> tuple[str, str]:
    """``ID@REGION`` for argparse."""
    image, at, region = text.rpartition("@")
    if not at or not image or not region:
        raise argparse.ArgumentTypeError(f"{text!r}: write IMAGE_ID@REGION, e.g. "
                                         "ami-0123456789abcdef0@eu-central-1")
    return image, region


def problems(runs: list[Run], registered: tuple[tuple[str, str], ...],
             accept_untested: tuple[str, ...]) -> list[Reason]:
    tested = {(run.prop(Prop.REGISTERED_IMAGE), run.prop(Prop.REGISTERED_REGION)) for run in runs}
    return [Reason(Kind.MISSING_TARGET, f"the copy {image} registered in {region} was not tested "
                   "(no run on it; the policy's [publication] accept_untested does not name "
                   f"{region})")
            for image, region in registered
            if (image, region) not in tested and region not in accept_untested]
