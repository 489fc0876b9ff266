// The 429 the limiter answers a denied flood with (problem+json body, Content-Type, RateLimit-Policy, RateLimit,
// X-RateLimit-*, Retry-After), built once.
export const body = JSON.stringify({
  type: "https://iana.org/assignments/http-problem-types#quota-exceeded",
  status: 429,
  title: "Request cannot be satisfied as assigned quota has been exceeded",
  detail: 'Rate limit exceeded for "bench"; retry in 3600 s.',
  "violated-policies": ["bench"],
});

export const headers = new Headers({
  "Content-Type": "application/problem+json",
  "RateLimit-Policy": '"bench";q=1;w=3600',
  RateLimit: '"bench";r=0;t=3600',
  "X-RateLimit-Limit": "1",
  "X-RateLimit-Remaining": "0",
  "X-RateLimit-Reset": "3600",
  "Retry-After": "3600",
});
