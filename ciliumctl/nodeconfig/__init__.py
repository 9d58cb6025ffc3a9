"""Per-node agent configuration: CiliumNodeConfig objects, effective configuration, rollouts.

Domain code only: no printing, no exits. :mod:`.engine` is a pure function of plain data;
:mod:`.cluster` reads that data from the cluster through a narrow client protocol.
"""
