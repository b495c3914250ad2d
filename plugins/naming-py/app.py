"""naming-py: the `naming` plugin's vendor naming policy, in Python.

Built from the same WIT (sdk/wit) with componentize-py; its output must be
identical to the Rust plugin's (scripts/build-py-plugin.sh checks that).
Every resource is called <site>-<role>, lowercase, at most `max_len`
characters (fact, default 63); load balancers and emit steps keep their
names (Kuryr finds the API load balancer as `default/kubernetes`).
"""

from typing import List, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

ABI_VERSION = 1
# The plugin's own version (contract 0.2.0's meta.version).
VERSION = "0.2.0"


def _fact(facts: List[Tuple[str, str]], key: str):
    for k, v in facts:
        if k == key:
            return v
    return None


class Meta(exports.Meta):
    def describe(self) -> types.Info:
        return types.Info(abi_version=ABI_VERSION, name="naming-py", hooks=[types.Hook.NAMING])

    def version(self) -> str:
        return VERSION


class Naming(exports.Naming):
    def name(self, kind: types.ResourceKind, default_name: str, context: List[Tuple[str, str]]) -> str:
        if kind in (types.ResourceKind.LOADBALANCER, types.ResourceKind.EMIT):
            return default_name
        site = _fact(context, "site")
        if site is None:
            raise Err("fact `site` is missing: add it to [plugin.facts]")
        site = site.lower()
        if not site or not all(c.isascii() and (c.isalnum() or c == "-") for c in site):
            raise Err(f"fact `site` = {site!r} must be letters, digits and '-'")
        raw_max = _fact(context, "max_len")
        try:
            max_len = 63 if raw_max is None else int(raw_max.strip())
        except ValueError:
            raise Err(f"fact `max_len` = {raw_max!r} is not a valid value")
        role = "".join(c if c.isascii() and c.isalnum() else "-" for c in default_name.lower())
        prefix = f"{site}-"
        name = role if role.startswith(prefix) else prefix + role
        if len(name) > max_len:
            kind_name = {
                types.ResourceKind.NETWORK: "network",
                types.ResourceKind.SUBNET: "subnet",
                types.ResourceKind.ROUTER: "router",
                types.ResourceKind.SECURITY_GROUP: "security_group",
            }.get(kind, "resource")
            raise Err(f"{kind_name} name `{name}` is {len(name)} characters, the limit is {max_len}")
        return name


class Plan(exports.Plan):
    def transform(self, facts: List[Tuple[str, str]], plan: str) -> str:
        raise Err("plugin `naming-py` does not implement the plan hook")


class Policy(exports.Policy):
    def check(self, sites: List[types.Site]) -> List[types.Violation]:
        raise Err("plugin `naming-py` does not implement the policy hook")
