-- The fast path v3 (docs/upgrades.md: a hot-path function's meaning never changes, so a new meaning
-- is a new name): wallet_fast_bet_v3, wallet_fast_win_v3 and wallet_fast_batch_v3 do what the v2
-- functions of 0005_fast_path_v2.sql do, and also decline (GPF01) what needs the per-grant
-- bookkeeping of migration 0008 (bonus_grants.balance, grant_entries, rounds.stake_grants):
--   a bet by a player whose bonus balance is above zero (it may draw on grants, and the max stake
--   of their open grants applies), and
--   a win in a round whose stake drew on bonus money (stake_bonus > 0: the win follows the grants).
-- gameplane.wallet.play answers those. A cash-only player keeps the one-round-trip path; the events
-- carry an empty `grants` like the Python path's.
--
-- Expand only: the v2 functions stay for the previous release's pods until a later release drops them.

CREATE FUNCTION wallet_fast_bet_v3(
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
    IF acc.bonus > 0 THEN
        PERFORM wallet_fast_decline('bonus');
    END IF;
    IF p_amount > acc.cash + acc.bonus THEN
        PERFORM wallet_fast_decline('funds');
    END IF;
    -- cash first, then bonus (gameplane.wallet.ledger.split_stake)
    v_cash := least(p_amount, acc.cash);
    v_bonus := p_amount - v_cash;
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
    UPDATE rounds SET stake_cash = stake_cash + v_cash, stake_bonus = stake_bonus + v_bonus
    WHERE provider = p_provider AND player_id = p_player AND round_id = p_round;
    v_answer := wallet_fast_answer(p_tx, 'bet', p_key, p_player, p_currency, p_amount, v_cash, v_bonus,
                                   acc.cash - v_cash, acc.bonus - v_bonus, acc.hold, p_now);
    UPDATE operations SET transaction_id = p_tx, response = v_answer WHERE key = p_key;
    INSERT INTO outbox (id, subject, headers, payload)
    VALUES (p_event, 'gameplane.wallet.bet_placed', p_headers, wallet_fast_envelope(p_event, 'wallet.bet_placed', p_now,
        jsonb_build_object('transaction_id', p_tx, 'player_id', p_player, 'currency', p_currency,
                           'amount', p_amount, 'cash', v_cash, 'bonus', v_bonus, 'occurred_at', v_ts,
                           'grants', '{}'::jsonb, 'round_id', p_round, 'game_id', p_game, 'provider', p_provider)));
    RETURN v_answer::text;
END $$;

CREATE FUNCTION wallet_fast_win_v3(
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
BEGIN
    INSERT INTO operations (key, kind, request_hash) VALUES (p_key, 'win', p_hash) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        PERFORM wallet_fast_decline('key taken');
    END IF;
    SELECT currency, stake_cash, stake_bonus, closed INTO rnd FROM rounds
    WHERE provider = p_provider AND player_id = p_player AND round_id = p_round FOR UPDATE;
    IF NOT FOUND OR rnd.currency <> p_currency OR rnd.closed THEN
        PERFORM wallet_fast_decline('round');
    END IF;
    IF rnd.stake_bonus > 0 THEN
        PERFORM wallet_fast_decline('bonus stake');
    END IF;
    acc := wallet_fast_lock_player(v_owner, p_currency);
    -- in the stake's proportion, bonus rounded down (gameplane.wallet.ledger.split_win)
    IF rnd.stake_bonus > 0 AND rnd.stake_cash + rnd.stake_bonus > 0 THEN
        v_bonus := div(p_amount::numeric * rnd.stake_bonus, rnd.stake_cash + rnd.stake_bonus)::bigint;
    END IF;
    v_cash := p_amount - v_bonus;
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
    UPDATE rounds SET won = won + p_amount, paid_out = paid_out OR p_amount > 0, closed = closed OR p_close
    WHERE provider = p_provider AND player_id = p_player AND round_id = p_round;
    v_answer := wallet_fast_answer(p_tx, 'win', p_key, p_player, p_currency, p_amount, v_cash, v_bonus,
                                   acc.cash + v_cash, acc.bonus + v_bonus, acc.hold, p_now);
    UPDATE operations SET transaction_id = p_tx, response = v_answer WHERE key = p_key;
    INSERT INTO outbox (id, subject, headers, payload)
    VALUES (p_event, 'gameplane.wallet.win_settled', p_headers, wallet_fast_envelope(p_event, 'wallet.win_settled',
        p_now, jsonb_build_object('transaction_id', p_tx, 'player_id', p_player, 'currency', p_currency,
                                  'amount', p_amount, 'cash', v_cash, 'bonus', v_bonus, 'occurred_at', v_ts,
                                  'grants', '{}'::jsonb, 'round_id', p_round, 'game_id', p_game, 'provider', p_provider,
                                  'round_closed', p_close)));
    RETURN v_answer::text;
END $$;

-- p_ops: a JSON array of objects with the parameters of wallet_fast_bet_v3 / wallet_fast_win_v3 by name,
-- plus "op": "bet" | "win". Returns one answer (or '!<SQLSTATE> <message>') per operation, in order.
CREATE FUNCTION wallet_fast_batch_v3(p_ops jsonb, p_shard int) RETURNS text[] LANGUAGE plpgsql AS $$
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
                answer := wallet_fast_bet_v3(
                    op->>'key', op->>'hash', (op->>'player')::uuid, op->>'currency', (op->>'amount')::bigint,
                    op->>'round', op->>'game', op->>'provider', op->'details', (op->>'now')::timestamptz,
                    (op->>'tx')::uuid, (op->>'event')::uuid, op->'headers', v_house);
                v_delta := (op->>'amount')::bigint;
            ELSE
                answer := wallet_fast_win_v3(
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
