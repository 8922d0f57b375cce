-- pgbench: the SQL of one autosave (POST /assessments/{id}/autosave changing one answer), as
-- the server sends it, captured from PostgreSQL's statement log (log_statement = 'all') on
-- 2026-12-04 (re-captured when the assessment, its organisation, cycle and question set came to
-- be read in one statement, where they were three); run with -M prepared, as the server's
-- statements are all prepared (diesel caches its SELECTs and INSERTs; the two UPDATEs are
-- services::saving's fixed statements).
-- Re-capture it when the path changes: ALTER DATABASE ... SET log_statement = 'all', restart
-- the server, autosave once.
--
-- The server does all of it on one pooled connection, in one transaction: the session lookup
-- included (web::auth::SessionCookie), and no check of the connection on checkout.
--
-- One addition the server does not make: the first statement finds this client's session,
-- assessment and the answer's current revision in bench_clients (scripts/bench/run fills it
-- from the HTTP run), which the server knows from the request. It is a primary-key lookup,
-- so pgbench's rate is, if anything, a little below the database's limit for the real work.
SELECT b.assessment_id AS aid, b.token_hash AS token, b.user_id AS uid, a.revision AS rev,
       s.questionnaire_version_id AS vid, s.organisation_id AS oid
  FROM bench_clients b JOIN answers a ON a.assessment_id = b.assessment_id AND a.question_key = 'wl-strategy'
  JOIN assessments s ON s.id = b.assessment_id
  WHERE b.client_id = :client_id \gset
\set value 2 + 2 * (:rev % 2)
BEGIN;
SELECT "sessions"."id", "sessions"."csrf_token", "sessions"."last_seen_at", "sessions"."stage", "sessions"."created_at", "sessions"."authenticated_at", "sessions"."sso_provider", "users"."id", "users"."email", "users"."name", "users"."role", "users"."organisation_id", "users"."group_organisation_id", "users"."group_region", "users"."password_hash", "users"."active", "users"."password_changed_at", "users"."created_at", "users"."updated_at", "memberships"."user_id", "memberships"."organisation_id", "memberships"."role", ("any_membership"."id" IS NOT NULL) FROM ((("sessions" INNER JOIN "users" ON ("sessions"."user_id" = "users"."id")) LEFT OUTER JOIN "memberships" ON ("sessions"."membership_id" = "memberships"."id")) LEFT OUTER JOIN "memberships" AS "any_membership" ON ("any_membership"."user_id" = "users"."id")) WHERE (((("sessions"."token_hash" = :token) AND ("sessions"."expires_at" > now()::timestamp)) AND ("sessions"."last_seen_at" > now()::timestamp - interval '1 hour')) AND ("users"."active" = true)) LIMIT 1;
SELECT "assessments"."id", "assessments"."cycle_id", "assessments"."organisation_id", "assessments"."setting", "assessments"."questionnaire_version_id", "assessments"."status", "assessments"."icb_id", "assessments"."region", "assessments"."deadline_override", "assessments"."revision", "assessments"."created_at", "assessments"."updated_at", "assessments"."closed_at", "organisations"."name", "cycles"."label", "cycles"."deadline", "questionnaire_versions"."id", "questionnaires"."key", "questionnaire_versions"."version", "questionnaire_versions"."title", "questionnaire_versions"."status", "questionnaire_versions"."created_at", "questionnaire_versions"."published_at", "questionnaire_versions"."checksum" FROM ((("assessments" INNER JOIN "organisations" ON ("organisations"."id" = "assessments"."organisation_id")) INNER JOIN "cycles" ON ("assessments"."cycle_id" = "cycles"."id")) INNER JOIN ("questionnaire_versions" INNER JOIN "questionnaires" ON ("questionnaire_versions"."questionnaire_id" = "questionnaires"."id")) ON ("assessments"."questionnaire_version_id" = "questionnaire_versions"."id")) WHERE ("assessments"."id" = :aid) LIMIT 1;
SELECT "answers"."question_key", "answers"."value", "answers"."revision", "answers"."carried_forward" FROM "answers" WHERE ("answers"."assessment_id" = :aid);
UPDATE answers SET value = :value, revision = revision + 1, carried_forward = FALSE, updated_by = :uid, updated_at = now()::timestamp WHERE assessment_id = :aid AND question_key = 'wl-strategy' AND revision = :rev;
INSERT INTO "answer_history" ("assessment_id", "question_key", "old_value", "new_value", "changed_by", "changed_at") VALUES (:aid, 'wl-strategy', '2', :value, :uid, now()::timestamp);
UPDATE assessments SET revision = revision + 1, status = CASE WHEN status = 'not_started' THEN 'in_progress' ELSE status END, updated_at = now()::timestamp WHERE id = :aid AND status IN ('not_started', 'in_progress', 'reopened') AND closed_at IS NULL;
INSERT INTO "audit_log" ("at", "actor_user_id", "actor_label", "action", "entity_type", "entity_id", "organisation_id", "before_value", "after_value", "ip") VALUES (now()::timestamp, :uid, 'contributor@bench.dma.example', 'assessment.answers_saved', 'assessment', :aid, :oid, '{"wl-strategy":2}', '{"wl-strategy":4}', '127.0.0.1');
COMMIT;
