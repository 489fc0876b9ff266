/**
 * A login endpoint behind edge-rate-limiter (from its npm package): every attempt is held until its answer is known,
 * so that concurrent guesses are bounded, then kept if it failed (a 401) and refunded if it succeeded.
 */
import { RateLimiter, rateLimit } from "edge-rate-limiter";
import { Hono } from "hono";
import { loginPolicy } from "./policy";

// The limiter's Durable Object class, bound as RATE_LIMITER in wrangler.jsonc.
export { RateLimiter };

/** The demo's one account: a real app checks its user store and a password hash (argon2, scrypt) here. */
const ACCOUNTS: Record<string, string> = { "ada@example.com": "correct horse battery staple" };

const app = new Hono<{ Bindings: Env }>();

app.use("/login", rateLimit({ policy: loginPolicy }));

app.post("/login", async (c) => {
  // The limiter read the email before the handler; the body is still whole here.
  const form = await c.req.parseBody();
  const email = typeof form.email === "string" ? form.email.toLowerCase() : "";
  const password = typeof form.password === "string" ? form.password : "";
  const expected = Object.hasOwn(ACCOUNTS, email) ? ACCOUNTS[email] : undefined;
  if (expected === undefined || !(await isSamePassword(password, expected))) return c.json({ error: "wrong email or password" }, 401);
  return c.json({ welcome: email });
});

/** Compares in constant time, both sides hashed first, so that the answer's timing says nothing of the password. */
async function isSamePassword(given: string, expected: string): Promise<boolean> {
  const digest = async (text: string) => new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  const [a, b] = await Promise.all([digest(given), digest(expected)]);
  return crypto.subtle.timingSafeEqual(a, b);
}

export default app;
