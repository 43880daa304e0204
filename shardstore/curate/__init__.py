"""Curation of stores: exact and near-duplicate removal, benchmark decontamination (document masks)."""
