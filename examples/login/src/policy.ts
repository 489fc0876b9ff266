/**
 * Login throttling, as rate-limiter-flexible's recipe has it, done atomically: failed logins counted per address
 * (slow brute force across many accounts) and per email and address (fast guessing of one account), a success
 * forgiving the pair's failures, and a penalty ladder for a pair that keeps coming back.
 */
import type { PolicyInput } from "edge-rate-limiter";

export const loginPolicy = {
  dimensions: {
    // From the login form's body, lower-cased (Ada@Example.com is ada@example.com) and hashed: never logged as it is.
    email: { from: "body", field: "email", lowercase: true },
    "email-ip": { from: "combined", of: ["email", "ip"] },
  },
  rules: [
    {
      // 100 failed logins a day from one address, whatever the emails: a success costs nothing.
      name: "failed-logins-per-ip",
      key: "ip",
      limit: 100,
      period: "1d",
      algorithm: "fixed-window",
      count: "failed",
      match: { methods: ["POST"], path: "/login" },
    },
    {
      // 5 failed logins in 15 minutes for one email from one address; a success starts the count again. Exhausted, the
      // pair is blocked for 15 minutes, then an hour, then a day each time it comes straight back.
      name: "failed-logins-per-email-ip",
      key: "email-ip",
      limit: 5,
      period: "15m",
      algorithm: "fixed-window",
      count: "failed",
      resetOnSuccess: true,
      block: { seconds: [900, 3600, 86400] },
      match: { methods: ["POST"], path: "/login" },
    },
  ],
} satisfies PolicyInput;
