DROP INDEX score_sets_current;
