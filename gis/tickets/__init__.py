"""Tickets: the closed loop of digital city management (数字化城市管理闭环) for complaints.

信息采集 collection → 立案 registration → 派遣 dispatch → 处置 handling → 处理反馈 feedback →
核查结案 verification and closing → 考核评价 evaluation. Every complaint becomes one ticket (a trigger on
`complaint`), routed by rules to the responsible party and moved through the state machine in `workflow`.
Rates: response rate 响应率, resolution rate 解决率, satisfaction rate 满意率.
"""
