-- Billing: the Stripe prices operators configured for plan versions
-- (`stripe_price` in a version's terms), to find the plan version a
-- subscription's price stands for. Read model of the `billing` projection;
-- Tenantry's own price names (`tenantry_{key}_v{n}`) need no row.
CREATE TABLE plan_prices (
    price_id TEXT PRIMARY KEY,
    plan_id  UUID NOT NULL,
    version  INTEGER NOT NULL
);
