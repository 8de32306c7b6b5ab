"""Every text a person reads, in one package: "what does a family see" is answered here.

- `vocabulary`: the words of stored values (regions, detainers, relations, visibility, event
  kinds, close reasons, alert filters, language names...), as msgids translated at use;
- `statuses`: the word and explanation of each case status (from `storage.statuses`);
- `messages`: the outbox templates, rendered at send time in the recipient's language.

Handlers' own replies stay next to their handlers (`context.tr.gettext(...)`); what is shared, or
read later by someone else, lives here. Nothing here sends anything (`jobs.send` does), and
nothing here imports `handlers`.
"""
