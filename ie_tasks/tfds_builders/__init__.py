"""TFDS builders for the public IE datasets (importing registers them).

`ie_conll2003`, `ie_crossner/{ai,literature,music,politics,science}`,
`ie_mit_movie`, `ie_mit_restaurant`, `ie_conll04`, `ie_casie`; prepare one
with `python -m ie_tasks.tfds_builders.prepare --dataset=ie_crossner/ai`.
"""
from ie_tasks.tfds_builders.base import IEBuilder, decode_record
from ie_tasks.tfds_builders.builders import (BUILDERS, IeCasie, IeConll04,
                                             IeConll2003, IeCrossner,
                                             IeMitMovie, IeMitRestaurant)
