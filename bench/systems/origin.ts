// The origin every limiter forwards admitted requests to: as small as a Worker gets.
export default {
  fetch(): Response {
    return new Response("ok");
  },
};
