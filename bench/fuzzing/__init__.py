"""tenet's own fuzzer (bench/fuzz.py): structure-aware mutation of valid inputs built with
our encoders, plus random bytes, against every decoder of untrusted input. Deterministic per
seed, so a crash found once is found again."""
