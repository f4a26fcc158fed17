-- Revert alerts_v2:message_facts to its @v1.2 version: that version's deploy script, frozen.
\ir ../deploy/message_facts@v1.2.sql
