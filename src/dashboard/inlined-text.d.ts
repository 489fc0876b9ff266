// The dashboard's page scripts, and uPlot's browser build and stylesheet, imported as text (wrangler.toml's [[rules]])
// to be inlined into the page.
declare module "*.page.js" {
  const text: string;
  export default text;
}
declare module "uplot/dist/uPlot.iife.min.js" {
  const text: string;
  export default text;
}
declare module "uplot/dist/uPlot.min.css" {
  const text: string;
  export default text;
}
