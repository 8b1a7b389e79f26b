"""The answer flow: the query of a follow-up (`followup`), hybrid retrieval (`retrieval`, `lexical`),
the prompt (`prompt`), the streamed answer cut into sentences (`sentence_stream`, `repetition`),
the run that ties them to attribution (`pipeline`), and asking within a conversation
(`conversation`) with the one answer state every reader shares (`state`)."""
