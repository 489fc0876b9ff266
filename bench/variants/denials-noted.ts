// This project as shipped, with every denial recorded beside its admissions: `npm run bench` serves it with the
// hierarchy's policy (client, org and global rules) as zipf-1000-hierarchy, whose under-admission check reads them.
import { thisProjectWorker } from "../systems/this-project-worker.ts";

export { RateLimiter, RateLimitMetrics } from "../systems/this-project-worker.ts";

export default thisProjectWorker({}, { denials: true });
