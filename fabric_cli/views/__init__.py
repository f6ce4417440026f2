"""Pictures: rich renderables built only from plain lists, dicts and NumPy arrays.

Each picture reads without colour (every intensity is also a glyph or a number) and fits the
width it is given. Only `commands/` imports this package.

    heatmap.attention_heatmap(tokens, pattern, *, title, mark, max_width)
    minimap.mini_heatmap(pattern, tokens=None) · minimap.heads_grid(maps, tokens, max_width)
    gradflow.gradient_flow(rows, *, embed, max_width, scale, compact, max_layers) · GradientScale
    curves.loss_curve(steps, losses, *, floor, val, width, height, marks, gap) · curves.sparkline
    headmap.head_role_map(heads, n_layers, n_heads, *, max_width=None)
    dashboard.TrainingDashboard · dashboard.plain_progress_line · ticker.moments_panel
    arcs.attention_arcs_svg(tokens, pattern, *, mark, title, theme)   (a plain SVG string)
    palette: component colours and names, shade ramps, the colour ramp (light_ramp for paper),
             literal()
"""
