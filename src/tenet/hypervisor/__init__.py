"""VM and virtual-router lifecycle behind one interface (seed 001's primitives, seed 002's and
seed 000's migration): create, destroy, start, stop, pause, resume, migrate, copy.

manager.py edits the intent through the store and drives a backend (backend.py: what a
hypervisor does to VMs on its machines); the lab's namespaces are one backend (lab/vms.py).
follow.py makes VMs match an intent written by someone else (`tenet apply --lab`);
migration.py is the live migration sequence.
"""
