"""The JUnit XML form our commands ask pytest for: the xunit1 family.

Every check carries facts of its own as <testcase><properties> (`check_id`, the reboot suite's
`platform_reset`), which the gate, the tests and the benchmarks read.  The xunit1 schema allows
them; xunit2's (Jenkins' junit-10.xsd, pytest's default family) does not, which is why pytest's
record_property warns under it.  Run facts stay <testsuite><properties>, valid in both.  Jenkins
reads both families; GitLab ignores properties and uses xunit1's testcase `file` attribute.
"""

from __future__ import annotations

#: `-o junit_family=…` for every pytest run `debian-cloud-tests run`, `demo` and `pipeline` start
JUNIT_FAMILY = "xunit1"
