"""Names the language and the runtime share: the IR checks a spec against them and the kernels
index by them. A module of its own, free of torch, so the front end does not import the runtime.
"""

UNILM_MASKS = ("bidirectional", "left_to_right", "right_to_left", "seq2seq")
PAIR_RELATIONS = ("next", "swapped", "previous", "random")
