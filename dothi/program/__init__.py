"""The national smart-city programme (Decision 950/QĐ-TTg, Decree 269/2025/NĐ-CP): tasks
with the "6 rõ", action plans, periodic reports, provincial schemes and pilots, kept as
entities in the same store as everything else, so that the national instance and the
provinces' instances share one model."""
