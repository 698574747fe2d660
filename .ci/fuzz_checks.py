"""Schemathesis checks for .ci/fuzz.

`no_undocumented_server_error` fails on any 500, and on any other 5xx the operation does not
document. Documented 5xx are deliberate answers: 503 for self-hosted billing ("there is no
Stripe portal"), 502 when Stripe itself fails.
"""

import schemathesis


@schemathesis.check
def no_undocumented_server_error(ctx, response, case):
    status = response.status_code
    if status < 500:
        return
    documented = set(case.operation.definition.raw.get("responses", {}).keys())
    if status == 500 or str(status) not in documented:
        raise AssertionError(
            f"server error {status} (documented: {sorted(documented)}): {response.text[:300]}"
        )
