"""Engine adapters: what differs between the engines a target deploys onto.

An *engine* is what runs an environment's workloads: a Docker engine, a libvirt host.
(Pulumi is never called an engine here: it is the *runner*, see :mod:`virtstack.runner`.)
Each target names one adapter; nothing outside this package asks which engine it is.
"""
