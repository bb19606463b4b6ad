"""Working with text collections: passages and cloze questions cut from a corpus, text
embeddings, and an exact nearest-neighbour index (the retrieval half of retrieval-augmented
generation)."""

from jdl.text.passages import Question, masked_word_questions, split_passages, unseen_questions
from jdl.text.retrieval import cosine_top_k, l2_normalize, recall_at_k
