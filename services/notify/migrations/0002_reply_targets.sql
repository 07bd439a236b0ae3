-- Where a complaint can be answered, for accounts with citizen acknowledgements turned on:
-- written from aduan.messages.v1, read when the complaint's `routed` event arrives.
CREATE TABLE notify_reply_targets (
    message_id          text PRIMARY KEY,   -- the complaint id as every topic names it
    platform            text        NOT NULL,
    account_id          text        NOT NULL,
    kind                text        NOT NULL,  -- comment, reply, tweet, ...
    platform_message_id text        NOT NULL,  -- the comment / tweet to reply to
    thread_key          text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
