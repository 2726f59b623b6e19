"""The front door's uptime check (infra/monitoring.tf) asks for a page that needs no token.

Google's checkers send no credentials. The check's path must route, through the front
door's URL map, to a public function that answers it without a token and with the content
the check looks for; otherwise the alert would page for an outage that is not one.
"""

from __future__ import annotations

import json

from functions import FUNCTIONS
from infra.front_door import backend_for
from tests.support.terraform import INFRA, resource_block, string_attribute


def test_the_uptime_check_gets_its_page_without_a_token(function_client):
    block = resource_block("monitoring.tf", "google_monitoring_uptime_check_config", "front_door")
    path = string_attribute(block, "path")
    content = string_attribute(block, "content")

    document = json.loads((INFRA / "front_door.json").read_text(encoding="utf-8"))
    backend = backend_for(document, path)
    deployed = json.loads((INFRA / "functions.json").read_text(encoding="utf-8"))["functions"]
    assert deployed[backend]["public"] is True
    spec = next(spec for spec in FUNCTIONS if spec.name == backend)

    response = function_client(spec.entry_point).get(path)  # no Authorization header
    assert response.status_code == 200
    assert content.encode() in response.data
