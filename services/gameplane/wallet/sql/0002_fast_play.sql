-- The bet/win fast path: one round trip, one implicit transaction, for the common case only.
--
-- Each function either completes the whole operation exactly as gameplane.wallet.play would
-- (same rows, same locks in the same order, same answer and event) and returns the answer as
-- JSON text, or raises SQLSTATE GPF01 ("not for the fast path") having changed nothing: the
-- caller then runs the Python path, which owns every refusal and its exact problem. So the fast
-- path never refuses and never accepts what the Python path would refuse: it declines on a taken
-- key (replay or conflict), any protection state that could matter (time-out, self-exclusion,
-- loss limits), an unknown/closed/other-currency round, a stake the balances cannot cover, and a
-- zero stake.
--
-- Lock order, as everywhere: idempotency key row -> round row -> player accounts (by kind) ->
-- platform accounts.

CREATE OR REPLACE FUNCTION wallet_fast_decline(why text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'GPF01', MESSAGE = 'fast path declined: ' || why;
END $$;

-- A timestamp as pydantic writes one (UTC, `Z`, microseconds only when there are any), so a
-- fast answer and its later replay through the Python path compare equal.
CREATE OR REPLACE FUNCTION wallet_fast_ts(p_ts timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN extract(microseconds FROM p_ts)::bigint % 1000000 = 0
                THEN to_char(p_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                ELSE to_char(p_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END
$$;

-- The player's accounts in the currency, locked (bonus, cash, withdrawal_hold: ORDER BY kind).
CREATE OR REPLACE FUNCTION wallet_fast_lock_player(p_owner text, p_currency text,
    OUT cash_id bigint, OUT cash bigint, OUT bonus_id bigint, OUT bonus bigint, OUT hold bigint)
LANGUAGE sql AS $$
    SELECT max(id) FILTER (WHERE kind = 'cash'), coalesce(max(balance) FILTER (WHERE kind = 'cash'), 0),
           max(id) FILTER (WHERE kind = 'bonus'), coalesce(max(balance) FILTER (WHERE kind = 'bonus'), 0),
           coalesce(max(balance) FILTER (WHERE kind = 'withdrawal_hold'), 0)
    FROM (SELECT id, kind, balance FROM accounts
          WHERE owner = p_owner AND currency = p_currency AND shard = 0 ORDER BY kind FOR UPDATE) a
$$;

-- Credit (or debit, for the house) an account, creating it on first use; returns its id.
CREATE OR REPLACE FUNCTION wallet_fast_post(p_owner text, p_kind text, p_currency text, p_shard int,
    p_amount bigint) RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO accounts AS a (owner, kind, currency, shard, balance)
    VALUES (p_owner, p_kind, p_currency, p_shard, p_amount)
    ON CONFLICT (owner, kind, currency, shard) DO UPDATE
    SET balance = a.balance + EXCLUDED.balance, updated_at = now()
    RETURNING id
$$;

-- The stored answer / HTTP body: the fields of gameplane.contracts.wallet.OperationResult.
CREATE OR REPLACE FUNCTION wallet_fast_answer(p_tx uuid, p_kind text, p_key text, p_player uuid,
    p_currency text, p_amount bigint, p_cash bigint, p_bonus bigint, b_cash bigint, b_bonus bigint,
    b_hold bigint, p_now timestamptz) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'transaction_id', p_tx, 'kind', p_kind, 'idempotency_key', p_key, 'player_id', p_player,
        'currency', p_currency, 'amount', p_amount,
        'split', jsonb_build_object('cash', p_cash, 'bonus', p_bonus),
        'balance', jsonb_build_object('currency', p_currency, 'cash', b_cash, 'bonus', b_bonus,
                                      'withdrawal_hold', b_hold),
        'created_at', wallet_fast_ts(p_now),
        'noop', false, 'hold_id', NULL, 'remaining', NULL, 'grant_id', NULL)
$$;

-- The outbox payload: gameplane.kit.events.Envelope around a wallet money event.
CREATE OR REPLACE FUNCTION wallet_fast_envelope(p_event uuid, p_type text, p_now timestamptz, p_data jsonb)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', p_event, 'type', p_type, 'version', 1,
        'occurred_at', wallet_fast_ts(p_now),
        'producer', 'wallet', 'data', p_data)
$$;

CREATE OR REPLACE FUNCTION wallet_fast_bet(
    p_key text, p_hash text, p_player uuid, p_currency text, p_amount bigint, p_round text, p_game text,
    p_provider text, p_details jsonb, p_now timestamptz, p_tx uuid, p_event uuid, p_headers jsonb,
    p_shard int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_owner text := p_player::text;
    v_round_currency text;
    v_closed boolean;
    acc record;
    v_cash bigint;
    v_bonus bigint;
    v_house bigint;
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
    v_house := wallet_fast_post('platform', 'house', p_currency, p_shard, p_amount);
    INSERT INTO entries (transaction_id, account_id, currency, amount) VALUES (p_tx, v_house, p_currency, p_amount);
    UPDATE rounds SET stake_cash = stake_cash + v_cash, stake_bonus = stake_bonus + v_bonus
    WHERE provider = p_provider AND player_id = p_player AND round_id = p_round;
    v_answer := wallet_fast_answer(p_tx, 'bet', p_key, p_player, p_currency, p_amount, v_cash, v_bonus,
                                   acc.cash - v_cash, acc.bonus - v_bonus, acc.hold, p_now);
    UPDATE operations SET transaction_id = p_tx, response = v_answer WHERE key = p_key;
    INSERT INTO outbox (id, subject, headers, payload)
    VALUES (p_event, 'gameplane.wallet.bet_placed', p_headers, wallet_fast_envelope(p_event, 'wallet.bet_placed', p_now,
        jsonb_build_object('transaction_id', p_tx, 'player_id', p_player, 'currency', p_currency,
                           'amount', p_amount, 'cash', v_cash, 'bonus', v_bonus, 'occurred_at', v_ts,
                           'round_id', p_round, 'game_id', p_game, 'provider', p_provider)));
    RETURN v_answer::text;
END $$;

CREATE OR REPLACE FUNCTION wallet_fast_win(
    p_key text, p_hash text, p_player uuid, p_currency text, p_amount bigint, p_round text, p_game text,
    p_provider text, p_close boolean, p_details jsonb, p_now timestamptz, p_tx uuid, p_event uuid,
    p_headers jsonb, p_shard int) RETURNS text LANGUAGE plpgsql AS $$
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
    IF p_amount > 0 THEN
        v_id := wallet_fast_post('platform', 'house', p_currency, p_shard, -p_amount);
        INSERT INTO entries (transaction_id, account_id, currency, amount) VALUES (p_tx, v_id, p_currency, -p_amount);
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
                                  'round_id', p_round, 'game_id', p_game, 'provider', p_provider,
                                  'round_closed', p_close)));
    RETURN v_answer::text;
END $$;
