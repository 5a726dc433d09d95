"""The README's seed flows through a client generated from openapi.yaml by openapi-python-client,
as an integrator would use it: booleans as booleans, typed bodies, and a 409 read back as the
typed error model. Run by tests/api/client.rs: argv = generated package dir, API URL, tenant,
group (the README's example group, seeded), and a token."""

import sys

sys.path.insert(0, sys.argv[1])
base_url, tenant, group, token = sys.argv[2:6]

from licensing_client import AuthenticatedClient  # noqa: E402
from licensing_client.api.configuration import list_user_service_configs  # noqa: E402
from licensing_client.api.group import get_group_licenses, put_group_licenses  # noqa: E402
from licensing_client.api.usage import add_instance, get_group_services  # noqa: E402
from licensing_client.models import (  # noqa: E402
    Errors,
    GroupLicenses,
    GroupLicensesPut,
    GroupServiceList,
    Instance,
    LicenseItem,
    LicenseItemAllocated,
    PutReceipt,
    ServiceSlug,
    UserServiceConfigList,
)

client = AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)


def check(condition, what):
    if not condition:
        raise SystemExit(f"seed flow failed: {what}")


# The group licenses GET with licensed=True: only licensed entries come back.
licensed = get_group_licenses.sync(tenant, group, client=client, licensed=True)
check(isinstance(licensed, GroupLicenses), f"a GroupLicenses, got {licensed!r}")
check(len(licensed.user_services) > 0, "licensed user services")
check(
    all(e.allocated.unlimited or e.allocated.maximum > 0 for e in licensed.user_services),
    "only licensed entries",
)

# The seed PUT with auto_assign: a licensed group service is assigned to the group.
body = GroupLicensesPut(
    group_services=[
        LicenseItem(
            name="Call Park",
            allocated=LicenseItemAllocated(unlimited=False, maximum=1),
        )
    ],
    auto_assign=True,
)
receipt = put_group_licenses.sync(tenant, group, client=client, body=body)
check(isinstance(receipt, PutReceipt), f"a PutReceipt, got {receipt!r}")
assigned = get_group_services.sync(tenant, group, client=client)
check(isinstance(assigned, GroupServiceList), f"a GroupServiceList, got {assigned!r}")
check(
    any(s.name == "Call Park" and s.assigned for s in assigned.services),
    "Call Park assigned by auto_assign",
)

# The configuration list with for_hg=True.
configs = list_user_service_configs.sync(client=client, for_hg=True)
check(isinstance(configs, UserServiceConfigList), f"a list, got {configs!r}")
check([c.instance_name for c in configs.user_services] == ["For_HG"], "For_HG alone")

# An instance by slug, then the same again: a 409 as the typed error model.
created = add_instance.sync(
    tenant, group, ServiceSlug("hunt-group"), client=client, body=Instance(name="Client Line")
)
check(isinstance(created, Instance) and created.name == "Client Line", f"created, got {created!r}")
again = add_instance.sync_detailed(
    tenant, group, ServiceSlug("hunt-group"), client=client, body=Instance(name="Client Line")
)
check(again.status_code == 409, f"a 409, got {again.status_code}")
check(isinstance(again.parsed, Errors), f"an Errors model, got {again.parsed!r}")
check(again.parsed.errors[0].code == "INSTANCE_EXISTS", f"INSTANCE_EXISTS, got {again.parsed!r}")
print("seed flows: ok")
