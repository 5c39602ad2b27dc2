-- What each step ran, so that retry reuses a step only when it would run the same thing, and why a
-- step of a retry run was reused or ran again.
--
-- fingerprint: HMAC-SHA256 (hex) of the step's resolved inputs (rendered command or argv, script
-- content, env, dir, params), keyed with the key file beside the database (never stored in it); NULL
-- for a step that did not render its command, and for every step recorded before this migration
-- (retry never reuses those).
-- retry_reason: in a retry run, why the step ran again or was reused: reused, not_succeeded,
-- new_step, need_not_reused, undone, outputs_masked, no_fingerprint, inputs_changed; NULL otherwise.
-- retry_detail: for not_succeeded the step's status in the retried run; for need_not_reused the need
-- that was not reused; for undone the dependent that ran after it there; NULL otherwise.
ALTER TABLE steps ADD COLUMN fingerprint TEXT;
ALTER TABLE steps ADD COLUMN retry_reason TEXT;
ALTER TABLE steps ADD COLUMN retry_detail TEXT;
