"""Resource options that keep already deployed stacks stable across component renames."""

from __future__ import annotations

import pulumi


def renamed_from(old_type: str, opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    """``opts`` plus an alias to the type a component had before.

    Children inherit their parent's aliases, so a deployed stack keeps every resource
    instead of replacing it after the component type changed.
    """
    alias = pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=old_type)])
    return pulumi.ResourceOptions.merge(opts, alias) if opts else alias
