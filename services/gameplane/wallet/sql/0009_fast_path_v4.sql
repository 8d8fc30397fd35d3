-- The fast path v4 (docs/upgrades.md: a hot-path function's meaning never changes, so a new meaning
-- is a new name): wallet_fast_bet_v4, wallet_fast_win_v4 and wallet_fast_batch_v4 serve bonus play
-- too, with the per-grant bookkeeping of migration 0008 exactly as gameplane.wallet.play writes it:
--   a bet draws cash first, then the player's open grants in spend order (priority, created_at,
--   grant_id; gameplane.wallet.ledger.draw), all of them locked in that order as grants.open_grants
--   locks them; each draw moves bonus_grants.balance with a grant_entries row; the round's
--   stake_grants grows by the draw; the answer's split and the event carry `grants`;
--   a win's bonus part (rounded down, ledger.split_win) goes over the round's stake_grants in
--   proportion, each part rounded down, the remainder to the largest stake, ties to the smallest
--   grant_id in code-point order (ledger.share); those grants are locked in spend order as
--   grants.open_of locks them.
-- They still decline (GPF01, nothing changed) what the Python path owns: a bet above the smallest
-- max_stake of the open grants while the player holds bonus money (its refusal, 403
-- bonus-max-stake), a win whose grants are not all still open (a grant closed since the bet: the
-- Python path returns that part to the liability), a win with a bonus part in a round staked before
-- 0008 (no stake_grants), and grants that do not hold what the bonus account says.
--
-- Lock order, as everywhere: idempotency key -> round -> player accounts (by kind) -> grant rows (by
-- spend order) -> platform accounts (the house, once per batch, last).
--
-- Expand only: the v3 functions stay for the previous release's pods until a later release drops them.

-- Move the grants' balances by p_sign * amount and write their sub-ledger rows for transaction p_tx
-- (grants.POST_CTE). The rows are already locked by the caller. PL/pgSQL, not SQL: its statements'
-- plans are kept for the session, a SQL function's would be made again on every call.
CREATE FUNCTION wallet_fast_grants_post(p_tx uuid, p_ids text[], p_amounts bigint[], p_sign int)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- one grant at a time: a lookup by primary key, whatever the planner guesses of an unnest
    FOR i IN 1 .. cardinality(p_ids) LOOP
        UPDATE bonus_grants SET balance = balance + p_sign * p_amounts[i] WHERE grant_id = p_ids[i];
        INSERT INTO grant_entries (transaction_id, grant_id, amount) VALUES (p_tx, p_ids[i], p_sign * p_amounts[i]);
    END LOOP;
END $$;

CREATE FUNCTION wallet_fast_bet_v4(
    p_key text, p_hash text, p_player uuid, p_currency text, p_amount bigint, p_round text, p_game text,
    p_provider text, p_details jsonb, p_now timestamptz, p_tx uuid, p_event uuid, p_headers jsonb,
    p_house bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_owner text := p_player::text;
    v_round_currency text;
    v_closed boolean;
    acc record;
    v_cash bigint;
    v_bonus bigint;
    v_ts text := wallet_fast_ts(p_now);
    v_answer jsonb;
    g record;
    v_left bigint;
    v_take bigint;
    v_drawn jsonb := '{}'::jsonb;
    v_ids text[] := '{}';
    v_amounts bigint[] := '{}';
BEGIN
    IF p_amount <= 0 THEN
        PERFORM wallet_fast_decline('zero stake');
    END IF;
    INSERT INTO operations (key, kind, request_hash) VALUES (p_key, 'bet', p_hash) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        PERFORM wallet_fast_decline('key taken');
    END IF;
    PERFORM 1 FROM protection p WHERE p.player_id = p_player AND (
        p.self_excluded_until > p_now OR p.timeout_until > p_now
        OR (p.currency = p_currency AND jsonb_path_exists(p.limits, '$[*] ? (@.kind == "loss")')));
    IF FOUND THEN
        PERFORM wallet_fast_decline('protection');
    END IF;
    INSERT INTO rounds (provider, player_id, round_id, currency, game_id)
    VALUES (p_provider, p_player, p_round, p_currency, p_game)
    ON CONFLICT (provider, player_id, round_id) DO UPDATE SET currency = rounds.currency
    RETURNING currency, closed INTO v_round_currency, v_closed;
    IF v_round_currency <> p_currency OR v_closed THEN
        PERFORM wallet_fast_decline('round');
    END IF;
    acc := wallet_fast_lock_player(v_owner, p_currency);
    -- cash first, then bonus (gameplane.wallet.ledger.split_stake)
    v_cash := least(p_amount, acc.cash);
    v_bonus := p_amount - v_cash;
    IF acc.bonus > 0 THEN
        -- every open grant locked in spend order (grants.open_grants), each drained before the next
        -- is touched (ledger.draw); any max stake below the stake: the Python path's refusal
        v_left := v_bonus;
        FOR g IN SELECT grant_id, balance, max_stake FROM bonus_grants
                 WHERE player_id = p_player AND currency = p_currency AND state = 'active'
                 ORDER BY priority, created_at, grant_id FOR UPDATE LOOP
            IF g.max_stake IS NOT NULL AND p_amount > g.max_stake THEN
                PERFORM wallet_fast_decline('max stake');
            END IF;
            v_take := least(v_left, g.balance);
            IF v_take > 0 THEN
                v_ids := v_ids || g.grant_id;
                v_amounts := v_amounts || v_take;
                v_drawn := v_drawn || jsonb_build_object(g.grant_id, v_take);
                v_left := v_left - v_take;
            END IF;
        END LOOP;
        IF v_left > 0 THEN
            PERFORM wallet_fast_decline('grants short of the bonus balance');
        END IF;
    END IF;
    IF p_amount > acc.cash + acc.bonus THEN
        PERFORM wallet_fast_decline('funds');
    END IF;
    INSERT INTO transactions (id, idempotency_key, kind, player_id, currency, amount, cash, bonus, details,
                              created_at)
    VALUES (p_tx, p_key, 'bet', p_player, p_currency, p_amount, v_cash, v_bonus, p_details, p_now);
    IF v_bonus > 0 THEN
        UPDATE accounts SET balance = balance - v_bonus, updated_at = now() WHERE id = acc.bonus_id;
        INSERT INTO entries (transaction_id, account_id, currency, amount)
        VALUES (p_tx, acc.bonus_id, p_currency, -v_bonus);
    END IF;
    IF v_cash > 0 THEN
        UPDATE accounts SET balance = balance - v_cash, updated_at = now() WHERE id = acc.cash_id;
        INSERT INTO entries (transaction_id, account_id, currency, amount)
        VALUES (p_tx, acc.cash_id, p_currency, -v_cash);
    END IF;
    -- the house's balance: once per batch, by wallet_fast_batch
    INSERT INTO entries (transaction_id, account_id, currency, amount) VALUES (p_tx, p_house, p_currency, p_amount);
    IF v_drawn = '{}'::jsonb THEN
        UPDATE rounds SET stake_cash = stake_cash + v_cash, stake_bonus = stake_bonus + v_bonus
        WHERE provider = p_provider AND player_id = p_player AND round_id = p_round;
    ELSE
        PERFORM wallet_fast_grants_post(p_tx, v_ids, v_amounts, -1);
        -- the round's stake per grant plus the draw, without zeros (grants.STAKE_GRANTS)
        UPDATE rounds SET stake_cash = stake_cash + v_cash, stake_bonus = stake_bonus + v_bonus,
            stake_grants = (SELECT coalesce(jsonb_object_agg(k, v), '{}'::jsonb) FROM (
                SELECT key AS k, sum(value::bigint) AS v FROM (
                    SELECT * FROM jsonb_each_text(rounds.stake_grants) UNION ALL
                    SELECT * FROM jsonb_each_text(v_drawn)) x
                GROUP BY key HAVING sum(value::bigint) <> 0) y)
        WHERE provider = p_provider AND player_id = p_player AND round_id = p_round;
    END IF;
    v_answer := wallet_fast_answer(p_tx, 'bet', p_key, p_player, p_currency, p_amount, v_cash, v_bonus,
                                   acc.cash - v_cash, acc.bonus - v_bonus, acc.hold, p_now);
    IF v_drawn <> '{}'::jsonb THEN  -- Split.grants: absent unless bonus money moved
        v_answer := jsonb_set(v_answer, '{split,grants}', v_drawn);
    END IF;
    UPDATE operations SET transaction_id = p_tx, response = v_answer WHERE key = p_key;
    INSERT INTO outbox (id, subject, headers, payload)
    VALUES (p_event, 'gameplane.wallet.bet_placed', p_headers, wallet_fast_envelope(p_event, 'wallet.bet_placed', p_now,
        jsonb_build_object('transaction_id', p_tx, 'player_id', p_player, 'currency', p_currency,
                           'amount', p_amount, 'cash', v_cash, 'bonus', v_bonus, 'occurred_at', v_ts,
                           'grants', v_drawn, 'round_id', p_round, 'game_id', p_game, 'provider', p_provider)));
    RETURN v_answer::text;
END $$;

CREATE FUNCTION wallet_fast_win_v4(
    p_key text, p_hash text, p_player uuid, p_currency text, p_amount bigint, p_round text, p_game text,
    p_provider text, p_close boolean, p_details jsonb, p_now timestamptz, p_tx uuid, p_event uuid,
    p_headers jsonb, p_house bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_owner text := p_player::text;
    rnd record;
    acc record;
    v_cash bigint := 0;
    v_bonus bigint := 0;
    v_id bigint;
    v_ts text := wallet_fast_ts(p_now);
    v_answer jsonb;
    v_total numeric;
    v_unusual boolean;
    v_largest text;
    v_ids text[] := '{}';
    v_amounts bigint[] := '{}';
    v_open bigint;
    v_per jsonb := '{}'::jsonb;
    i int;
BEGIN
    INSERT INTO operations (key, kind, request_hash) VALUES (p_key, 'win', p_hash) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        PERFORM wallet_fast_decline('key taken');
    END IF;
    SELECT currency, stake_cash, stake_bonus, stake_grants, closed INTO rnd FROM rounds
    WHERE provider = p_provider AND player_id = p_player AND round_id = p_round FOR UPDATE;
    IF NOT FOUND OR rnd.currency <> p_currency OR rnd.closed THEN
        PERFORM wallet_fast_decline('round');
    END IF;
    acc := wallet_fast_lock_player(v_owner, p_currency);
    -- in the stake's proportion, bonus rounded down (gameplane.wallet.ledger.split_win)
    IF rnd.stake_bonus > 0 AND rnd.stake_cash + rnd.stake_bonus > 0 THEN
        v_bonus := div(p_amount::numeric * rnd.stake_bonus, rnd.stake_cash + rnd.stake_bonus)::bigint;
    END IF;
    v_cash := p_amount - v_bonus;
    IF v_bonus > 0 THEN
        -- over the round's stake per grant (ledger.share): each part rounded down, the remainder to
        -- the largest stake, ties to the smallest grant_id in code-point order ("C")
        SELECT sum(value::bigint), bool_or(value::bigint <= 0) INTO v_total, v_unusual
        FROM jsonb_each_text(rnd.stake_grants);
        IF v_total IS NULL OR v_unusual THEN
            PERFORM wallet_fast_decline('bonus stake without its grants');
        END IF;
        SELECT key INTO v_largest FROM jsonb_each_text(rnd.stake_grants)
        ORDER BY value::bigint DESC, key COLLATE "C" LIMIT 1;
        SELECT array_agg(key ORDER BY key COLLATE "C"),
               array_agg(div(v_bonus::numeric * value::bigint, v_total)::bigint ORDER BY key COLLATE "C")
        INTO v_ids, v_amounts FROM jsonb_each_text(rnd.stake_grants);
        i := array_position(v_ids, v_largest);
        v_amounts[i] := v_amounts[i] + v_bonus - (SELECT sum(x) FROM unnest(v_amounts) x);
        SELECT coalesce(array_agg(gid ORDER BY k), '{}'), coalesce(array_agg(amt ORDER BY k), '{}'),
               coalesce(jsonb_object_agg(gid, amt), '{}'::jsonb)
        INTO v_ids, v_amounts, v_per
        FROM unnest(v_ids, v_amounts) WITH ORDINALITY AS d(gid, amt, k) WHERE amt <> 0;
        -- those grants locked in spend order (grants.open_of); one closed since the bet: the
        -- Python path, which returns its part to the liability
        SELECT count(*) FILTER (WHERE state = 'active') INTO v_open FROM (
            SELECT state FROM bonus_grants WHERE grant_id = ANY(v_ids)
            ORDER BY priority, created_at, grant_id FOR UPDATE) locked;
        IF v_open <> cardinality(v_ids) THEN
            PERFORM wallet_fast_decline('grant closed since the bet');
        END IF;
    END IF;
    INSERT INTO transactions (id, idempotency_key, kind, player_id, currency, amount, cash, bonus, details,
                              created_at)
    VALUES (p_tx, p_key, 'win', p_player, p_currency, p_amount, v_cash, v_bonus, p_details, p_now);
    IF v_bonus > 0 THEN
        v_id := wallet_fast_post(v_owner, 'bonus', p_currency, 0, v_bonus);
        INSERT INTO entries (transaction_id, account_id, currency, amount) VALUES (p_tx, v_id, p_currency, v_bonus);
    END IF;
    IF v_cash > 0 THEN
        v_id := wallet_fast_post(v_owner, 'cash', p_currency, 0, v_cash);
        INSERT INTO entries (transaction_id, account_id, currency, amount) VALUES (p_tx, v_id, p_currency, v_cash);
    END IF;
    IF p_amount > 0 THEN  -- the house's balance: once per batch, by wallet_fast_batch
        INSERT INTO entries (transaction_id, account_id, currency, amount) VALUES (p_tx, p_house, p_currency, -p_amount);
    END IF;
    IF cardinality(v_ids) > 0 THEN
        PERFORM wallet_fast_grants_post(p_tx, v_ids, v_amounts, 1);
    END IF;
    UPDATE rounds SET won = won + p_amount, paid_out = paid_out OR p_amount > 0, closed = closed OR p_close
    WHERE provider = p_provider AND player_id = p_player AND round_id = p_round;
    v_answer := wallet_fast_answer(p_tx, 'win', p_key, p_player, p_currency, p_amount, v_cash, v_bonus,
                                   acc.cash + v_cash, acc.bonus + v_bonus, acc.hold, p_now);
    IF v_per <> '{}'::jsonb THEN  -- Split.grants: absent unless bonus money moved
        v_answer := jsonb_set(v_answer, '{split,grants}', v_per);
    END IF;
    UPDATE operations SET transaction_id = p_tx, response = v_answer WHERE key = p_key;
    INSERT INTO outbox (id, subject, headers, payload)
    VALUES (p_event, 'gameplane.wallet.win_settled', p_headers, wallet_fast_envelope(p_event, 'wallet.win_settled',
        p_now, jsonb_build_object('transaction_id', p_tx, 'player_id', p_player, 'currency', p_currency,
                                  'amount', p_amount, 'cash', v_cash, 'bonus', v_bonus, 'occurred_at', v_ts,
                                  'grants', v_per, 'round_id', p_round, 'game_id', p_game, 'provider', p_provider,
                                  'round_closed', p_close)));
    RETURN v_answer::text;
END $$;

-- p_ops: a JSON array of objects with the parameters of wallet_fast_bet_v4 / wallet_fast_win_v4 by name,
-- plus "op": "bet" | "win". Returns one answer (or '!<SQLSTATE> <message>') per operation, in order.
CREATE FUNCTION wallet_fast_batch_v4(p_ops jsonb, p_shard int) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    op jsonb;
    answers text[] := '{}';
    answer text;
    currencies text[] := '{}';  -- per currency of the batch: its house account, what the batch posted there
    houses bigint[] := '{}';
    deltas bigint[] := '{}';
    i int;
    v_house bigint;
    v_delta bigint;
BEGIN
    FOR op IN SELECT value FROM jsonb_array_elements(p_ops) LOOP
        BEGIN
            IF op->>'op' NOT IN ('bet', 'win') OR op->>'op' IS NULL THEN
                PERFORM wallet_fast_decline('unknown operation ' || coalesce(op->>'op', 'null'));
            END IF;
            i := array_position(currencies, op->>'currency');
            v_house := CASE WHEN i IS NULL THEN wallet_fast_house(op->>'currency', p_shard) ELSE houses[i] END;
            IF op->>'op' = 'bet' THEN
                answer := wallet_fast_bet_v4(
                    op->>'key', op->>'hash', (op->>'player')::uuid, op->>'currency', (op->>'amount')::bigint,
                    op->>'round', op->>'game', op->>'provider', op->'details', (op->>'now')::timestamptz,
                    (op->>'tx')::uuid, (op->>'event')::uuid, op->'headers', v_house);
                v_delta := (op->>'amount')::bigint;
            ELSE
                answer := wallet_fast_win_v4(
                    op->>'key', op->>'hash', (op->>'player')::uuid, op->>'currency', (op->>'amount')::bigint,
                    op->>'round', op->>'game', op->>'provider', (op->>'close')::boolean, op->'details',
                    (op->>'now')::timestamptz, (op->>'tx')::uuid, (op->>'event')::uuid, op->'headers', v_house);
                v_delta := -(op->>'amount')::bigint;
            END IF;
            -- only now, the operation done: a failed one leaves neither a house (created in its
            -- rolled-back subtransaction) nor a posting behind
            IF i IS NULL THEN
                currencies := currencies || (op->>'currency');
                houses := houses || v_house;
                deltas := deltas || 0::bigint;
                i := cardinality(currencies);
            END IF;
            deltas[i] := deltas[i] + v_delta;
        EXCEPTION WHEN OTHERS THEN
            answer := '!' || SQLSTATE || ' ' || SQLERRM;
        END;
        answers := answers || answer;
    END LOOP;
    -- the house rows last, by currency (see the lock order above)
    FOR i IN SELECT k FROM unnest(currencies) WITH ORDINALITY AS c(currency, k) ORDER BY currency LOOP
        IF deltas[i] <> 0 THEN
            UPDATE accounts SET balance = balance + deltas[i], updated_at = now() WHERE id = houses[i];
        END IF;
    END LOOP;
    RETURN answers;
END $$;
