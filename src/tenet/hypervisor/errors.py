"""What a hypervisor operation could not do, named (the lab's own errors are ones too)."""


class HypervisorError(RuntimeError):
    pass
