/** `["rules", 0, "limit"]` → `rules[0].limit`: where a problem is, as a policy's author reads it. */
export function formatPath(path: readonly PropertyKey[], root = "(policy)"): string {
  let text = "";
  for (const key of path) {
    if (typeof key === "number") text += `[${key}]`;
    else text += text === "" ? String(key) : `.${String(key)}`;
  }
  return text === "" ? root : text;
}
